-- A Kubernetes profile may name the agent-service profile its releases' services answer
-- through (the eval gate of a canary's version, cancelling a canary's approvals, the
-- incident switch pausing its canaries). NULL: it follows the console's active profile.
-- Removing the agent profile falls back to following.
ALTER TABLE profiles ADD COLUMN agent_profile TEXT REFERENCES profiles (id) ON DELETE SET NULL;
