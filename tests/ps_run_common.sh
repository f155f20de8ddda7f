# SPDX-License-Identifier: MIT
# Sourced by ps_mpirun.sh and ps_slurm.sh: pick_port prints a TCP port
# nobody listens on now, below the ephemeral range (so outgoing
# connections do not take it meanwhile). A port taken between the check
# and rank 0's bind makes rank 0 say "in use": callers retry.
pick_port() {
	local port hex
	for _ in $(seq 50); do
		port=$((20000 + RANDOM % 12000))
		hex=$(printf ':%04X ' "$port")
		if ! grep -qi "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	return 1
}
