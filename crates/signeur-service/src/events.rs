//! Events on a request's hash chain: built by the store's [`signeur_store::append_event`]
//! (pure; it moves the chain head kept on the request row), written by the use case in the
//! transaction of the change that causes them.

pub(crate) use signeur_store::append_event as append;
