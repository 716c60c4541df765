//! introspection commands.

use crate::commands::Command;

pub const COMMANDS: &[Command] = &[];

/// CLIENT SETNAME / HELLO SETNAME: no spaces or newlines.
pub fn validate_client_name(name: &[u8]) -> Result<(), crate::protocol::Reply> {
    if name.iter().any(|&c| c < b'!' || c > b'~') {
        return Err(crate::protocol::Reply::err(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(())
}
