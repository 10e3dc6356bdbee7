-- One job at a time through the queue's own functions: claim one, then
-- complete it under its lease token (pgbench -M prepared; :exec set by -D).
SELECT j ->> 'id' AS id, j ->> 'lease_token' AS token FROM cogo.claim(:exec, 'w', 60) j \gset
SELECT cogo.complete(:id::uuid, true, NULL, NULL, :token::uuid);
