-- 002_outbox_notify.sql - wake the producer when changes are captured.
--
-- One notification per statement that adds outbox rows (not per row): the
-- producer drains the outbox in batches anyway, and PostgreSQL folds equal
-- notifications of one transaction into one. The payload is empty; the
-- producer reads the outbox itself and still polls
-- (producer.poll_interval_ms) in case a notification was missed while it
-- was disconnected.
CREATE FUNCTION sysrepl_outbox_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sysrepl_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER sysrepl_outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION sysrepl_outbox_notify();
