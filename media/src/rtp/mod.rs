//! RTP → frames. Owned by the RTP work; see the crate docs for the contract.
