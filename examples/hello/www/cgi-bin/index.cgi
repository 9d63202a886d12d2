#!/bin/sh
# GET or POST /: answers "hello <version>" (busybox httpd serves POST only through CGI).
[ "${CONTENT_LENGTH:-0}" -gt 0 ] 2>/dev/null && head -c "$CONTENT_LENGTH" >/dev/null
printf 'Content-Type: text/plain\r\n\r\n'
echo "hello $APP_VERSION"
