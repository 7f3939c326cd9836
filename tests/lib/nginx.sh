# tests/lib/nginx.sh — nginx_conf HTML RUN NOFILE: an nginx configuration
# on stdout, for nginx under the preload (tests/integration/nginx.sh,
# bench/connections.sh): in the foreground, one worker (its master forks
# it), no access log, sendfile, keep-alive without a request limit, port
# 8080 with a backlog of 4096, files from HTML, pid/log/temporary files in
# RUN, up to NOFILE connections.
nginx_conf() {
	cat <<EOC
daemon off;
worker_processes 1;
worker_rlimit_nofile $3;
pid $2/nginx.pid;
error_log $2/error.log warn;
events { worker_connections $3; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  keepalive_timeout 300;
  client_body_temp_path $2/body;
  proxy_temp_path $2/proxy;
  fastcgi_temp_path $2/fastcgi;
  uwsgi_temp_path $2/uwsgi;
  scgi_temp_path $2/scgi;
  server { listen 8080 backlog=4096; root $1; }
}
EOC
}
