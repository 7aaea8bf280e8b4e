-- 0005: the matcher's shared candidate pools and the registry version (issue 5 performance).
-- A decision names its pool (candidates and exclusions, content-addressed: pool_id = H("aicf/pool/v1", record))
-- instead of repeating them; `registry_version` counts changes to what static eligibility reads of a provider,
-- so a matcher may keep the registry's profiles between passes and reload only when it moved.
CREATE TABLE pools (
    pool_id BLOB PRIMARY KEY,
    record  BLOB NOT NULL  -- canonical CBOR {"candidates": [...], "excluded": [...]}
) WITHOUT ROWID;

CREATE TABLE registry_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO registry_version (id, version) VALUES (1, 0);

CREATE TRIGGER providers_inserted AFTER INSERT ON providers
BEGIN
    UPDATE registry_version SET version = version + 1 WHERE id = 1;
END;

CREATE TRIGGER providers_deleted AFTER DELETE ON providers
BEGIN
    UPDATE registry_version SET version = version + 1 WHERE id = 1;
END;

-- heartbeats, token buckets and strikes change a provider's row without touching its profile: no new version
CREATE TRIGGER providers_profile_changed AFTER UPDATE ON providers
WHEN OLD.status IS NOT NEW.status OR OLD.kinds IS NOT NEW.kinds OR OLD.models IS NOT NEW.models
  OR OLD.devices IS NOT NEW.devices OR OLD.regions IS NOT NEW.regions OR OLD.tee_classes IS NOT NEW.tee_classes
  OR OLD.max_leases IS NOT NEW.max_leases OR OLD.bonded IS NOT NEW.bonded OR OLD.public_key IS NOT NEW.public_key
BEGIN
    UPDATE registry_version SET version = version + 1 WHERE id = 1;
END;
