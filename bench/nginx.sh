# bench/nginx.sh: sourced by the benches that compare the edge with nginx + secure_link
# (compare.sh, players.sh): the link and location both use, and what each reads of a server's
# processes in /proc.
#
# The link grants one content id (every path under it) until an expiry, like the edge's
# playback token: /s/{md5}/{expires}/{content id}/{path}, md5 over expiry, id and secret,
# base64url.

# The secure_link location serving `root`/{id}/{path}; `secret` signs the links.
secure_link_location() { # secret, root
  cat <<CONF
    location ~ "^/s/(?<sl_md5>[A-Za-z0-9_-]{22})/(?<sl_expires>[0-9]{1,12})/(?<sl_id>[A-Za-z0-9_-]{1,64})/(?<sl_path>[A-Za-z0-9._/-]{1,256})\$" {
      secure_link \$sl_md5,\$sl_expires;
      secure_link_md5 "\$secure_link_expires\$sl_id $1";
      if (\$secure_link = "") { return 403; }
      if (\$secure_link = "0") { return 403; }
      alias $2/\$sl_id/\$sl_path;
CONF
}

# The link path for `path` of `content id`, valid until `expires` (unix seconds).
secure_link_path() { # secret, expires, content id, path
  local md5
  md5=$(printf '%s' "$2$3 $1" | openssl md5 -binary | base64 | tr +/ -_ | tr -d =)
  printf '/s/%s/%s/%s/%s' "$md5" "$2" "$3" "$4"
}

# The pids of a server: the process and its children (nginx's master and workers).
server_tree() { # pid
  echo "$1 $(pgrep -P "$1" | tr '\n' ' ')"
}

# The http-level settings both benches give nginx: no access log, sendfile (`on` unless given),
# keep-alive without a request cap (the edge has none), open_file_cache, the package's MIME
# types, temp paths under `dir`.
nginx_http_common() { # dir, [sendfile on|off]
  cat <<CONF
  access_log off;
  sendfile ${2:-on};
  tcp_nopush on;
  tcp_nodelay on;
  server_tokens off;
  keepalive_timeout 65;
  keepalive_requests 1000000;
  open_file_cache max=1000 inactive=60s;
  types {
    application/vnd.apple.mpegurl m3u8;
    application/dash+xml mpd;
    video/iso.segment m4s;
    video/mp4 mp4;
  }
  default_type application/octet-stream;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
CONF
}

# Sums over processes what an awk program reads off one /proc file of each: CPU time
# (`cpu_ticks`: utime + stime, clock ticks) or Pss (`pss_kb`: KiB, so pages shared between
# nginx's master and workers count once).
proc_sum() { # file under /proc/{pid}, awk program, pids...
  local file=$1 prog=$2 t=0 p v
  shift 2
  for p in "$@"; do
    v=$(awk "$prog" "/proc/$p/$file" 2>/dev/null || echo 0)
    t=$((t + ${v:-0}))
  done
  echo "$t"
}
cpu_ticks() { proc_sum stat '{ print $14 + $15 }' "$@"; }
pss_kb() { proc_sum smaps_rollup '/^Pss:/ { print $2; exit }' "$@"; }
