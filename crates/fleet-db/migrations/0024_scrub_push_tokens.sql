-- A push without a data_list field was kept as a reject with its whole form, the receivers'
-- shared secret included, and fleet.ingest_rejects is readable by the analyst role and in
-- every backup. The receivers no longer store the token (only that one was sent); this removes
-- it from the rejects stored before. The raw form is `key=value&` pairs, so the token's value
-- runs to the next `&` or the end.
update fleet.ingest_rejects
   set raw = regexp_replace(raw, '(^|&)token=[^&]*', '\1token=[removed]', 'g')
 where raw ~ '(^|&)token=';

comment on column fleet.ingest_rejects.raw is
    'The rejected record as received (cut to 64 KiB), for diagnosis; never holds the push token.';
