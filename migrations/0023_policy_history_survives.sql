-- A worker's policy history outlives the worker: approval-log rows name a policy version, and
-- deleting a worker must not erase what that version allowed (a cascade runs as the owner and
-- would bypass the audit table's append-only rule).
ALTER TABLE ai_worker_policies DROP CONSTRAINT ai_worker_policies_team_id_worker_id_fkey;
