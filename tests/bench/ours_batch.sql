-- Batches of 50 through the queue's own functions: claim 50, then
-- complete_many them under their lease tokens.
SELECT coalesce(jsonb_agg(jsonb_build_object('p_job_id', j -> 'id', 'p_ok', true, 'p_lease_token', j -> 'lease_token')),
                '[]') AS results
FROM cogo.claim(:exec, 'w', 60, NULL, 50) j \gset
SELECT cogo.complete_many(:results::jsonb);
