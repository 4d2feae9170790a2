/** End-to-end test support: the local process cluster the soak scripts use too. */
export { LocalCluster as TestCluster, CLI, freePortRange, runCli, sleep, waitFor } from '../../scripts/localCluster.js';
