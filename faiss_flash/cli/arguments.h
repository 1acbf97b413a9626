// Command-line parsing of the faiss-flash subcommands: positional
// arguments, options with a value (`--k 16` or `--k=16`, short aliases
// `-o PATH`), repeatable options and flags, and a generated --help.

#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace faiss_flash {
namespace cli {

/// A mistake on the command line; reported with the usage, exit status 2.
struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Whether an option must be given.
enum class Presence { Optional, Required };

class ArgumentParser {
   public:
    /// @param command  e.g. "faiss-flash kmeans", shown in the usage
    /// @param summary  one paragraph printed by --help under the usage
    ArgumentParser(std::string command, std::string summary);

    /// A required positional argument, in order of declaration.
    void add_positional(const char* name, const char* help, std::string* value);

    /** An option taking a value. `names`: comma-separated spellings,
     * e.g. "-o,--output". The value's initial content is shown as the
     * default in --help (unless required). Integers and reals must parse
     * completely ("12x" is refused).
     */
    void add_option(const char* names, const char* metavar, const char* help,
                    std::string* value, Presence presence = Presence::Optional);
    void add_option(const char* names, const char* metavar, const char* help,
                    int* value, Presence presence = Presence::Optional);
    void add_option(const char* names, const char* metavar, const char* help,
                    double* value, Presence presence = Presence::Optional);

    /// An option that may be repeated; each occurrence appends a value.
    /// When given at least once, the values replace the initial content.
    void add_option(const char* names, const char* metavar, const char* help,
                    std::vector<int>* values, Presence presence = Presence::Optional);

    /// An option without value; sets *value to true when present.
    void add_flag(const char* names, const char* help, bool* value);

    /** Parses the arguments after the subcommand's name.
     * @return false when --help / -h was given (the help has been printed
     *         to stdout), true when the values are set
     * @throws UsageError for unknown options, missing or malformed values,
     *         missing required arguments, extra positional arguments
     */
    bool parse(const std::vector<std::string>& args);

    /// The usage line ("usage: faiss-flash kmeans IN --k K ...").
    std::string usage() const;

    /// The full --help text.
    std::string help() const;

   private:
    struct Option {
        std::vector<std::string> names;
        std::string metavar; ///< empty for flags
        std::string help;
        std::string default_text; ///< empty when there is none to show
        Presence presence = Presence::Optional;
        bool repeatable = false;
        bool seen = false;
        /// Stores a value; `first` is true at the first occurrence.
        std::function<void(const std::string& text, bool first)> set;
    };
    struct Positional {
        std::string name;
        std::string help;
        std::string* value;
    };

    void add(const char* names, const char* metavar, const char* help,
             std::string default_text, Presence presence, bool repeatable,
             std::function<void(const std::string&, bool)> set);
    Option* find(const std::string& name);

    std::string command_;
    std::string summary_;
    std::vector<Positional> positionals_;
    std::vector<Option> options_;
};

} // namespace cli
} // namespace faiss_flash
