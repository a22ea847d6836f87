// The journal's schema, one entry per version. PRAGMA user_version holds the version a file is at;
// opening a file applies the missing entries in order, inside one transaction, so an older journal
// is upgraded in place and a crash mid-upgrade leaves it as it was.

/** Statements that take a file from version i to version i + 1 (MIGRATIONS[0] creates it). */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE calls (
    request_id TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,              -- "tm" or "datastore"
    driver     TEXT NOT NULL,
    action     TEXT NOT NULL,              -- as oned named it, with any .suffix
    args       TEXT NOT NULL,              -- JSON; never stdin, never the oned session
    hosts      TEXT,                       -- JSON array of the hosts the call touched
    vm_id      INTEGER,
    started_at INTEGER NOT NULL,           -- ms since the epoch
    ended_at   INTEGER,
    outcome    TEXT NOT NULL CHECK (outcome IN ('running', 'success', 'failure')),
    exit_code  INTEGER,
    error      TEXT,
    bytes      INTEGER
  );
  CREATE INDEX calls_started_at ON calls (started_at);
  -- reconciliation after a restart reads only the calls still running
  CREATE INDEX calls_running ON calls (outcome) WHERE outcome = 'running';

  CREATE TABLE steps (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL REFERENCES calls (request_id),
    host       TEXT NOT NULL,              -- the agent the step ran on
    rpc        TEXT NOT NULL,
    args       TEXT NOT NULL,              -- JSON
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    outcome    TEXT NOT NULL CHECK (outcome IN ('running', 'success', 'failure')),
    error      TEXT,
    bytes      INTEGER                     -- bytes moved so far (progress) or in all
  );
  CREATE INDEX steps_request_id ON steps (request_id);
  `,
  // Version 2: journals written before redaction held Receive's data-path ticket in plain text.
  `
  UPDATE steps SET args = json_set(args, '$.ticket', '[redacted]')
  WHERE json_valid(args) AND json_type(args, '$.ticket') = 'text' AND json_extract(args, '$.ticket') <> '';
  `,
  // Version 3: progress of long steps (total, rate, phase, when it was sampled) and who cancelled
  // a call ('operator': one-storage cancel; 'oned': the driver action was killed).
  `
  ALTER TABLE steps ADD COLUMN total INTEGER;
  ALTER TABLE steps ADD COLUMN rate REAL;
  ALTER TABLE steps ADD COLUMN phase TEXT;
  ALTER TABLE steps ADD COLUMN progress_at INTEGER;
  ALTER TABLE calls ADD COLUMN cancelled_by TEXT;
  CREATE INDEX steps_running ON steps (request_id) WHERE outcome = 'running';
  `,
  // Version 4: when a restarted coordinator closed a call an earlier run left running (recovery).
  `
  ALTER TABLE calls ADD COLUMN interrupted_at INTEGER;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;
