# Sourced by demo.sh and test.sh, from the top of the tree, after the build. Root's commands run
# the agent again as the `backup` user, who cannot read a clone under a root-only directory such
# as /root (0700). Then the rest runs from a copy `backup` can read, in a fresh directory that is
# removed at the end. The tree holds no secrets; the copy is root's and only readable by others.
readable_copy() {
  if setpriv --reuid=backup --regid=backup --init-groups -- test -r "$PWD/dist/main.js"; then
    return 0
  fi
  local copy
  copy=$(mktemp -d /var/tmp/backup-agent-run.XXXXXX)
  # shellcheck disable=SC2064 # the path is fixed now, on purpose
  trap "rm -rf '$copy'" EXIT
  tar --create --file=- . | tar --extract --file=- --directory="$copy"
  chmod -R go+rX,go-w "$copy"
  echo "$(basename "$0"): the backup user cannot read $PWD; running from a readable copy in $copy" >&2
  cd "$copy"
}
