#!/usr/bin/env bash
# Stops what .ci/setup.d/20-cluster.sh started (by pid file).
cd "$(dirname "$0")/../.."
bash tests/infra/cluster-down.sh
