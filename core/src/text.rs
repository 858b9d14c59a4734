//! Small text helpers shared by the router and the engines.

/// The longest prefix of `text` of at most `max_bytes` bytes that ends on a character
/// boundary: a bounded slice to tokenise or analyse, whatever the request's size.
pub fn prefix(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::prefix;

    #[test]
    fn prefix_cuts_on_char_boundaries() {
        assert_eq!(prefix("hello", 10), "hello");
        assert_eq!(prefix("hello", 3), "hel");
        assert_eq!(prefix("héllo", 2), "h"); // 'é' is 2 bytes
        assert_eq!(prefix("", 0), "");
        assert_eq!(prefix("aé", 2), "a");
    }
}
