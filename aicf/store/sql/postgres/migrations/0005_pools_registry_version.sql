-- 0005: the matcher's shared candidate pools and the registry version (issue 5 performance).
-- A decision names its pool (candidates and exclusions, content-addressed: pool_id = H("aicf/pool/v1", record))
-- instead of repeating them; `registry_version` counts changes to what static eligibility reads of a provider,
-- so a matcher may keep the registry's profiles between passes and reload only when it moved.
CREATE TABLE pools (
    pool_id BYTEA PRIMARY KEY,
    record  BYTEA NOT NULL  -- canonical CBOR {"candidates": [...], "excluded": [...]}
);

CREATE TABLE registry_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 0);

CREATE FUNCTION bump_registry_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE registry_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER providers_inserted_or_deleted AFTER INSERT OR DELETE ON providers
FOR EACH ROW EXECUTE FUNCTION bump_registry_version();

-- heartbeats, token buckets and strikes change a provider's row without touching its profile: no new version
CREATE TRIGGER providers_profile_changed AFTER UPDATE ON providers
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.kinds IS DISTINCT FROM NEW.kinds
  OR OLD.models IS DISTINCT FROM NEW.models OR OLD.devices IS DISTINCT FROM NEW.devices
  OR OLD.regions IS DISTINCT FROM NEW.regions OR OLD.tee_classes IS DISTINCT FROM NEW.tee_classes
  OR OLD.max_leases IS DISTINCT FROM NEW.max_leases OR OLD.bonded IS DISTINCT FROM NEW.bonded
  OR OLD.public_key IS DISTINCT FROM NEW.public_key)
EXECUTE FUNCTION bump_registry_version();
