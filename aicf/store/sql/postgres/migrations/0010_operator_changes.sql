-- 0010: operator transactions (issue 17 item 7; aicf.core.operator): each applied one is a transition row at
-- its block's height (who, what, from -> to, effective epoch), rolled back with its block like every chain row.
-- Params in force, tiers, the operator allowlist and trap seed commitments/reveals are read from these rows.
CREATE TABLE operator_changes (
    height          BIGINT NOT NULL,
    tx_index        BIGINT NOT NULL,
    tx_hash         BYTEA NOT NULL,
    sender          BYTEA NOT NULL,
    op              TEXT NOT NULL,
    subject         BYTEA NOT NULL,
    before          BYTEA NOT NULL,
    after           BYTEA NOT NULL,
    effective_epoch BIGINT NOT NULL,
    time            BIGINT NOT NULL,
    PRIMARY KEY (height, tx_index)
);
CREATE INDEX operator_changes_by_op ON operator_changes (op, subject);
