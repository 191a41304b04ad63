# Sourced by the two top-level commands: install npm packages when missing or out of date.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  printf '\n\033[1m== npm ci (first run only)\033[0m\n'
  npm ci --no-audit --no-fund
fi
