//! The targets, each with its measured figure and pass or miss, printed
//! last.

#[derive(Default)]
pub struct Summary {
    rows: Vec<(String, String, &'static str)>,
}

impl Summary {
    pub fn check(&mut self, target: &str, figure: String, pass: bool) {
        self.rows.push((target.into(), figure, if pass { "pass" } else { "MISS" }));
    }

    /// A target whose figure this run could not measure, and why.
    pub fn unmeasured(&mut self, target: &str, why: &str) {
        self.rows.push((target.into(), format!("not measured: {why}"), "-"));
    }

    pub fn print(&self) {
        if self.rows.is_empty() {
            return;
        }
        println!("\n{:<6} {:<64} measured", "result", "target");
        for (target, figure, result) in &self.rows {
            println!("{result:<6} {target:<64} {figure}");
        }
    }
}
