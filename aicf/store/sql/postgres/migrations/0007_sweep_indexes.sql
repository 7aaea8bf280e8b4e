-- 0007: the sweep's providers (issue 5 performance). A sweep pass reads only the providers whose jail ended or
-- whose unbonding period is over (`providers_due`), not every provider: one small partial index per case, each
-- holding a provider only while it is jailed or has stake unbonding.
CREATE INDEX providers_jail_ends ON providers (jailed_until) WHERE status = 'JAILED';
CREATE INDEX providers_unbonding_ends ON providers (unbonding_until) WHERE unbonding > 0;
