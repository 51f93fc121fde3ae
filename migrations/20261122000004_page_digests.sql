-- The digest of every report page body last applied, per stream, client, window and page: a
-- re-sync skips a page whose body is byte-identical (the steady state costs a fetch and a hash).
-- Windows move with "today", so each page is compared row by row again at least daily.
create table rotessa.page_digests (
    stream       text not null,
    client_id    bigint not null,
    window_from  date not null,
    window_to    date not null,
    page         integer not null,
    digest       bigint not null,
    row_count    integer not null,
    applied_at   timestamptz not null default now(),
    primary key (stream, client_id, window_from, window_to, page)
);
