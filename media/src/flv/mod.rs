//! FLV tags ↔ frames. Owned by the FLV work; see the crate docs for the contract.
