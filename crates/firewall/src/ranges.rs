//! (owned by the kernel-enforcement work: nfnetlink set-element batches, blacklist range merging)
