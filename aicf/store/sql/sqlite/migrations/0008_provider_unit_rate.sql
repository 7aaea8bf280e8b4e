-- 0008: a provider's own unit-rate limits (issue: "unit rate limits burst + sustained"), declared at registration.
-- 0 means SPEC §6's protocol figure (burst 10 × Γ/1000 mu, refill Γ × 1000 mu per day), which is also the cap: a
-- provider may only be stricter. Set once at registration and never updated, so the registry-version trigger of
-- 0005 need not list them (matching reads the bucket from the provider's row on every pass, not from the cache).
ALTER TABLE providers ADD COLUMN unit_burst_mu INTEGER NOT NULL DEFAULT 0;
ALTER TABLE providers ADD COLUMN unit_rate_mu_per_day INTEGER NOT NULL DEFAULT 0;
