-- Idempotency-Key for every POST: the first request with a key runs and
-- its response is stored; a repeat gets the stored response; the same key
-- with another body, or while the first is still running, is refused.

-- Claims (principal, route, key) for a request whose body hashes to
-- p_request_hash. Answers {state: started | in_flight | mismatch | done,
-- status?, body?, retryAfter?}. A request in flight holds its key only for a
-- short lease (p_lease_seconds), so one that crashed before finishing frees
-- its key for a retry; a finished one is kept for idempotency_finish's
-- p_ttl_seconds.
CREATE OR REPLACE FUNCTION cogo.idempotency_begin(
  p_principal text, p_route text, p_key text, p_request_hash text, p_lease_seconds integer)
RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
  existing cogo.idempotency_keys;
BEGIN
  DELETE FROM cogo.idempotency_keys
  WHERE principal = p_principal AND route = p_route AND key = p_key AND expires_at < now();
  INSERT INTO cogo.idempotency_keys (key, principal, route, request_hash, expires_at)
  VALUES (p_key, p_principal, p_route, p_request_hash, now() + make_interval(secs => p_lease_seconds))
  ON CONFLICT DO NOTHING;
  IF FOUND THEN
    RETURN jsonb_build_object('state', 'started');
  END IF;
  SELECT * INTO existing FROM cogo.idempotency_keys
  WHERE principal = p_principal AND route = p_route AND key = p_key;
  IF existing.request_hash <> p_request_hash THEN
    RETURN jsonb_build_object('state', 'mismatch');
  ELSIF existing.state = 'in_flight' THEN
    RETURN jsonb_build_object('state', 'in_flight',
      'retryAfter', greatest(1, ceil(extract(epoch FROM existing.expires_at - now())))::integer);
  END IF;
  RETURN jsonb_build_object('state', 'done', 'status', existing.response_status, 'body', existing.response_body);
END
$$;

-- Stores the response of a started request; p_status NULL forgets the key
-- instead (the request failed in a way worth retrying). The signature from
-- before in-flight leases (0010), without p_ttl_seconds, goes first.
DROP FUNCTION IF EXISTS cogo.idempotency_finish(text, text, text, integer, jsonb);
CREATE OR REPLACE FUNCTION cogo.idempotency_finish(
  p_principal text, p_route text, p_key text, p_status integer, p_body jsonb, p_ttl_seconds integer)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF p_status IS NULL THEN
    DELETE FROM cogo.idempotency_keys WHERE principal = p_principal AND route = p_route AND key = p_key;
  ELSE
    UPDATE cogo.idempotency_keys SET state = 'done', response_status = p_status, response_body = p_body,
      expires_at = now() + make_interval(secs => p_ttl_seconds)
    WHERE principal = p_principal AND route = p_route AND key = p_key;
  END IF;
END
$$;

-- Expired keys are also swept by the reaper's cron run.
CREATE OR REPLACE FUNCTION cogo.idempotency_sweep() RETURNS integer
LANGUAGE sql AS $$
  WITH gone AS (DELETE FROM cogo.idempotency_keys WHERE expires_at < now() RETURNING 1)
  SELECT count(*)::integer FROM gone
$$;

GRANT EXECUTE ON FUNCTION cogo.idempotency_begin(text, text, text, text, integer),
  cogo.idempotency_finish(text, text, text, integer, jsonb, integer), cogo.idempotency_sweep()
  TO service_role;
