//! Tables for people that fit the terminal: the width comes from `COLUMNS`,
//! else the terminal stdout is; ids are cut to [`ID_CHARS`] (still unique
//! enough to read, and accepted nowhere as an id: `-o wide` or `-o json`
//! give whole ones), long cells to [`CELL_CHARS`] except the ones that
//! must be read whole (wrapped instead), and the less needed columns show
//! only with `-o wide`, which also lifts every limit.

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{ContentArrangement, Table};

use super::output::Format;

/// Characters of an id shown in a table.
pub const ID_CHARS: usize = 10;
/// Characters of any other cell shown in a table.
pub const CELL_CHARS: usize = 40;

/// A column of a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// Shown always, cut to [`CELL_CHARS`].
    Text(&'static str),
    /// An id: shown always, cut to [`ID_CHARS`].
    Id(&'static str),
    /// Shown always and whole (wrapped to fit): labels, errors, repairs.
    Full(&'static str),
    /// Shown only with `-o wide`.
    Wide(&'static str),
}

/// A table being filled.
pub struct Grid {
    table: Table,
    columns: Vec<Column>,
    wide: bool,
}

/// A table with these columns, for `format`.
pub fn grid(format: Format, columns: &[Column]) -> Grid {
    let wide = format == Format::Wide;
    let mut table = Table::new();
    table.load_preset(UTF8_BORDERS_ONLY);
    match terminal_width(std::env::var("COLUMNS").ok().as_deref(), &table) {
        Some(width) if !wide => {
            table
                .set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(width);
        }
        _ => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    let mut grid = Grid {
        table,
        columns: columns.to_vec(),
        wide,
    };
    let header: Vec<String> = columns
        .iter()
        .map(|column| match column {
            Column::Text(name) | Column::Id(name) | Column::Full(name) | Column::Wide(name) => {
                name.to_string()
            }
        })
        .collect();
    let header = grid.shown(header);
    grid.table.set_header(header);
    grid
}

/// The width to fit: `COLUMNS` when it is a number, else the terminal's.
fn terminal_width(columns: Option<&str>, table: &Table) -> Option<u16> {
    columns
        .and_then(|text| text.trim().parse::<u16>().ok())
        .filter(|width| *width > 0)
        .or_else(|| table.width())
}

impl Grid {
    /// Adds a row: one cell per column, in the columns' order.
    pub fn row(&mut self, cells: Vec<String>) {
        let cells = self.shown(cells);
        self.table.add_row(cells);
    }

    /// The cells this format shows, cut to size.
    fn shown(&self, cells: Vec<String>) -> Vec<String> {
        if self.wide {
            return cells;
        }
        self.columns
            .iter()
            .zip(cells)
            .filter_map(|(column, cell)| match column {
                Column::Text(_) => Some(cut(&cell, CELL_CHARS)),
                Column::Id(_) => Some(cut_id(&cell)),
                Column::Full(_) => Some(cell),
                Column::Wide(_) => None,
            })
            .collect()
    }
}

impl std::fmt::Display for Grid {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.table)
    }
}

/// `text` cut to `max` characters, the last one `…` when cut.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

/// An id cut to [`ID_CHARS`] (no ellipsis: it is a prefix).
pub fn cut_id(id: &str) -> String {
    id.chars().take(ID_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_cut_with_an_ellipsis_and_ids_to_a_prefix() {
        assert_eq!(cut("short", 10), "short");
        assert_eq!(cut("exactly-10", 10), "exactly-10");
        assert_eq!(cut("a bit too long", 10), "a bit too…");
        assert_eq!(cut_id("01KBQ4ZJ0AW8Y4ZWJ0PJ7WDT5F"), "01KBQ4ZJ0A");
    }

    #[test]
    fn narrow_tables_hide_wide_columns_and_fit_the_width() {
        let columns = [Column::Id("ID"), Column::Text("APP"), Column::Wide("BY")];
        let id = "01KBQ4ZJ0AW8Y4ZWJ0PJ7WDT5F".to_string();
        let long = "x".repeat(200);
        let mut narrow = grid(Format::Table, &columns);
        narrow.table.set_width(80);
        narrow
            .table
            .set_content_arrangement(ContentArrangement::Dynamic);
        narrow.row(vec![id.clone(), long.clone(), "alice".into()]);
        let text = narrow.to_string();
        assert!(!text.contains("BY") && !text.contains("alice"), "{text}");
        assert!(text.contains("01KBQ4ZJ0A") && !text.contains(&id), "{text}");
        assert!(
            text.lines().all(|line| line.chars().count() <= 80),
            "{text}"
        );
        let mut wide = grid(Format::Wide, &columns);
        wide.row(vec![id.clone(), long.clone(), "alice".into()]);
        let text = wide.to_string();
        assert!(
            text.contains(&id) && text.contains(&long) && text.contains("alice"),
            "{text}"
        );
    }

    #[test]
    fn columns_sets_the_width_to_fit() {
        let table = Table::new();
        assert_eq!(terminal_width(Some("80"), &table), Some(80));
        assert_eq!(terminal_width(Some(" 120 "), &table), Some(120));
    }
}
