//! One real end-to-end test of the keyring store. Without a Secret Service in this
//! session, the test re-runs itself inside a private D-Bus session (`dbus-run-session`)
//! with a gnome-keyring daemon unlocked with a throwaway password, and fails with the packages
//! to install if the tools for that are missing.

use std::path::Path;
use std::process::Command;

use flightdeck_core::secrets::{KeyringStore, SecretStore};
use flightdeck_core::{ProfileId, Secret};

const INSIDE: &str = "FLIGHTDECK_KEYRING_SESSION";
const TEST: &str = "keyring::the_os_keyring_keeps_a_secret_across_entries";

#[test]
fn the_os_keyring_keeps_a_secret_across_entries() {
    let service = format!("flightdeck-test-{}", uuid::Uuid::new_v4().simple());
    let store = KeyringStore::with_service(&service);
    if std::env::var_os(INSIDE).is_some() {
        wait_until_writable(&store);
        exercise(&service);
        return;
    }
    match store.probe() {
        Ok(_) => exercise(&service),
        Err(_) => rerun_in_private_session(),
    }
}

/// A daemon started with `--daemonize` may still be setting up its login collection when
/// the first call arrives: wait (bounded) until a write goes through. Under heavy load
/// (two cores, every test binary running) that took over 10 s once, hence 30 s.
fn wait_until_writable(store: &KeyringStore) {
    let probe = ProfileId::parse("readiness-probe").unwrap();
    let secret = Secret::parse("probe").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        match store
            .set(&probe, &secret)
            .and_then(|()| store.delete(&probe))
        {
            Ok(()) => return,
            Err(e) if std::time::Instant::now() > deadline => {
                panic!("the private Secret Service did not accept a write within 30 s: {e}")
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(100)),
        }
    }
}

fn exercise(service: &str) {
    let profile = ProfileId::parse("prod-eu").unwrap();
    let writer = KeyringStore::with_service(service);
    writer.delete(&profile).unwrap();
    assert_eq!(writer.get(&profile).unwrap(), None);
    writer
        .set(&profile, &Secret::parse("fdk_first").unwrap())
        .unwrap();
    // A separate store (a separate keyring Entry) sees it: it is really stored.
    let reader = KeyringStore::with_service(service);
    assert_eq!(reader.get(&profile).unwrap().unwrap().expose(), "fdk_first");
    writer
        .set(&profile, &Secret::parse("fdk_second").unwrap())
        .unwrap();
    assert_eq!(
        reader.get(&profile).unwrap().unwrap().expose(),
        "fdk_second"
    );
    let other = ProfileId::parse("staging").unwrap();
    assert_eq!(reader.get(&other).unwrap(), None, "secrets are per profile");
    reader.delete(&profile).unwrap();
    reader.delete(&profile).unwrap();
    assert_eq!(writer.get(&profile).unwrap(), None);
}

fn on_path(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| Path::new(&d).join(tool).is_file()))
        .unwrap_or(false)
}

fn rerun_in_private_session() {
    let missing: Vec<&str> = ["dbus-run-session", "gnome-keyring-daemon"]
        .into_iter()
        .filter(|t| !on_path(t))
        .collect();
    assert!(
        missing.is_empty(),
        "no Secret Service is running and {} is missing: install the Debian packages \
         `dbus-x11 gnome-keyring` (scripts/test.sh does) to run the keyring test",
        missing.join(" and ")
    );
    let home = std::env::temp_dir().join(format!("fd-keyring-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&home).unwrap();
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("dbus-run-session")
        .args([
            "--",
            "sh",
            "-c",
            "echo -n pw | gnome-keyring-daemon --unlock --components=secrets --daemonize >/dev/null && exec \"$@\"",
            "sh",
        ])
        .arg(&exe)
        .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(INSIDE, "1")
        .env("HOME", &home)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .expect("run dbus-run-session");
    let _ = std::fs::remove_dir_all(&home);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "the keyring test inside a private D-Bus session failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
