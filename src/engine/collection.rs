//! Sets and chains found in a backend listing, and which of them a time selects.
