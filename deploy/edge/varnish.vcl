# The reference edge in Varnish (7.x), for deployments that need each part at every viewer as soon as the
# first one has it: Varnish's request coalescing wakes the requests waiting behind a miss when the object
# arrives, where nginx's cache lock (deploy/edge/nginx.conf) makes them look again every 500 ms.
# (benchmarks/edge.py --modes nginx,varnish measures both; docs/benchmarks.md, "Caching edge".)
#
# The built-in VCL does the rest: it honours the nodes' Cache-Control (parts, segments and init immutable,
# playlists 1 s, blocking reloads cacheable under their full query, restricted playlists private/no-store)
# and keys on the whole URL, query included. Run with `-p default_grace=0 -p default_keep=0` so a live
# playlist is never served stale.
#
# @HOST@/@PORT@: one node; for several, use a round-robin director (vmod_directors) over them.
vcl 4.1;

backend onair {
    .host = "@HOST@";
    .port = "@PORT@";
    # a node holds a blocking reload up to three target durations
    .first_byte_timeout = 30s;
    .between_bytes_timeout = 30s;
}

sub vcl_recv {
    # the API, the pages, WebSocket chat and WHIP pass through uncached; only HLS is cached
    if (req.url !~ "^/hls/") {
        return (pass);
    }
}
