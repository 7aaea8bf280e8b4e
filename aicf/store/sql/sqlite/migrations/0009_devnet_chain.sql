-- 0009: the embedded devnet's own chain (issue 12), kept in the coordinator's database so that `aicf up --db X`
-- resumes the same chain after a stop or a SIGKILL. Blocks and pending transactions are opaque canonical CBOR
-- written by aicf.chain.devnet; the store only keeps them in order. devnet_meta holds the devnet's config and
-- counters, and each signed sender's next nonce under "nonce:<hex address>".
CREATE TABLE devnet_blocks (
    height INTEGER PRIMARY KEY,
    data   BLOB NOT NULL
);
CREATE TABLE devnet_mempool (
    seq  INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
CREATE TABLE devnet_meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
-- A requester follows its transaction by hash (aicf.getTransaction): the job it made, or why it was refused.
CREATE INDEX jobs_by_tx_hash ON jobs (tx_hash);
CREATE INDEX refused_txs_by_tx_hash ON refused_txs (tx_hash);
CREATE INDEX cancel_requests_by_tx_hash ON cancel_requests (tx_hash);
