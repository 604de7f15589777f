//! The command-line options both programs share, `--trace` and `--lang`, as one clap
//! definition each binary flattens into its own (feature `cli`), and the tracer they ask
//! for.

use clap::builder::{PossibleValuesParser, TypedValueParser as _};

use crate::sys::Tracer;
use crate::trace::{Lang, Role, Selection};

/// `--trace[=textbook]` and `--lang en|ko`.
#[derive(Debug, Clone, clap::Args)]
pub struct TraceArgs {
    /// Narrate every socket call on stderr; `--trace textbook`: only the calls the
    /// textbook's program makes (the others are counted at the end).
    #[arg(long, value_name = "textbook", num_args = 0..=1, require_equals = true,
          default_missing_value = "all",
          value_parser = PossibleValuesParser::new(["all", "textbook"]).try_map(|s| Selection::parse(&s)))]
    pub trace: Option<Selection>,

    /// Language of the trace (default: from LC_ALL/LC_MESSAGES/LANG).
    #[arg(long, value_name = "en|ko",
          value_parser = PossibleValuesParser::new(["en", "ko"]).try_map(|s| Lang::parse(&s)))]
    pub lang: Option<Lang>,
}

impl TraceArgs {
    /// The tracer these options ask for: on stderr in the chosen language, or off.
    pub fn tracer(&self, role: Role) -> Tracer {
        match self.trace {
            Some(selection) => Tracer::stderr(role, Lang::choose(self.lang), selection),
            None => Tracer::off(),
        }
    }
}
