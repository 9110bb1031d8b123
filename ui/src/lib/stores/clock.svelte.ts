/** A shared, ticking "now" (1 s) for countdowns and relative times. */
class Clock {
  now = $state(Date.now());

  constructor() {
    setInterval(() => {
      this.now = Date.now();
    }, 1000);
  }
}

export const clock = new Clock();
