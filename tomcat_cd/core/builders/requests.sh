# Credentials and request bodies for curl, whatever a secret holds: quotes, backslashes,
# `$(...)`, backquotes, newlines. Neither helper starts a process that sees the secret in
# its arguments (printf is a bash builtin; base64 reads it on standard input).

# basic_auth USER PASSWORD: the Authorization header, for `curl -H @<(basic_auth ...)`.
# Base64 keeps every byte of the password out of curl's own config parsing.
basic_auth() {
  printf 'Authorization: Basic %s\n' "$(printf '%s:%s' "$1" "$2" | base64 -w0)"
}

# json_string TEXT: TEXT as one JSON string (RFC 8259 escapes), for request bodies built
# where jq is not installed (the Elasticsearch image).
json_string() {
  local text=$1 out="" char i
  for ((i = 0; i < ${#text}; i++)); do
    char=${text:i:1}
    case $char in
      \") out+=\\\" ;;
      \\) out+=\\\\ ;;
      [[:cntrl:]]) printf -v char '\\u%04x' "'$char"; out+=$char ;;
      *) out+=$char ;;
    esac
  done
  printf '"%s"' "$out"
}
