#!/usr/bin/env bash
# The slurm source's test cluster: sshd + single-node Slurm (with accounting) on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/infra/cluster-up.sh
