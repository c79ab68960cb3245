use rmcp::ErrorData;
use rmcp::model::PaginatedRequestParams;
use serde_json::json;

/// One page of `items` for a list request: the slice and the cursor of the next page.
///
/// Cursors are opaque to clients; ours is the offset, so a list that does not change between
/// pages pages exactly. A cursor that is not ours is an error naming it, not page one.
pub fn page<T: Clone>(
    items: &[T],
    request: Option<&PaginatedRequestParams>,
    page_size: usize,
) -> Result<(Vec<T>, Option<String>), ErrorData> {
    let start = match request.and_then(|r| r.cursor.as_deref()) {
        None => 0,
        Some(cursor) => cursor
            .parse::<usize>()
            .ok()
            .filter(|&offset| offset <= items.len())
            .ok_or_else(|| {
                ErrorData::invalid_params(
                    format!("invalid cursor `{cursor}`"),
                    Some(json!({ "cursor": cursor })),
                )
            })?,
    };
    let end = start.saturating_add(page_size).min(items.len());
    let next = (end < items.len()).then(|| end.to_string());
    Ok((items[start..end].to_vec(), next))
}
