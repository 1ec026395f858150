#!/bin/sh
# Runs in the unpacked bundle on each host. berth streams every line.
set -eu
echo "hello from $BERTH_HOST: deploying $BERTH_APP $BERTH_VERSION ($BERTH_DEPLOYMENT_ID)"
echo "bundle holds: $(cat message.txt)"
for step in 1 2 3; do
  echo "step $step of 3"
  sleep 0.2
done
echo "$BERTH_VERSION" > "$BERTH_WORK_DIR/installed-version"
echo "done on $BERTH_HOST"
