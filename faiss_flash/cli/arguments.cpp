#include <faiss_flash/cli/arguments.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>

namespace faiss_flash {
namespace cli {

namespace {

std::vector<std::string> split_names(const char* names) {
    std::vector<std::string> out;
    std::stringstream ss(names);
    std::string name;
    while (std::getline(ss, name, ',')) {
        out.push_back(name);
    }
    return out;
}

int parse_int(const std::string& option, const std::string& text) {
    char* end = nullptr;
    errno = 0;
    const long v = strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || errno == ERANGE || v < INT32_MIN ||
        v > INT32_MAX) {
        throw UsageError(option + " expects an integer, got '" + text + "'");
    }
    return int(v);
}

double parse_real(const std::string& option, const std::string& text) {
    char* end = nullptr;
    const double v = strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v)) {
        throw UsageError(option + " expects a number, got '" + text + "'");
    }
    return v;
}

std::string join(const std::vector<std::string>& names) {
    std::string s;
    for (const std::string& n : names) {
        s += (s.empty() ? "" : ", ") + n;
    }
    return s;
}

} // namespace

ArgumentParser::ArgumentParser(std::string command, std::string summary)
        : command_(std::move(command)), summary_(std::move(summary)) {}

void ArgumentParser::add(
        const char* names,
        const char* metavar,
        const char* help,
        std::string default_text,
        Presence presence,
        bool repeatable,
        std::function<void(const std::string&, bool)> set) {
    Option o;
    o.names = split_names(names);
    o.metavar = metavar;
    o.help = help;
    o.default_text = presence == Presence::Required ? "" : default_text;
    o.presence = presence;
    o.repeatable = repeatable;
    o.set = std::move(set);
    options_.push_back(std::move(o));
}

void ArgumentParser::add_positional(
        const char* name,
        const char* help,
        std::string* value) {
    positionals_.push_back(Positional{name, help, value});
}

void ArgumentParser::add_option(
        const char* names,
        const char* metavar,
        const char* help,
        std::string* value,
        Presence presence) {
    add(names, metavar, help, *value, presence, false,
        [value](const std::string& text, bool) { *value = text; });
}

void ArgumentParser::add_option(
        const char* names,
        const char* metavar,
        const char* help,
        int* value,
        Presence presence) {
    const std::string option = split_names(names).back();
    add(names, metavar, help, std::to_string(*value), presence, false,
        [value, option](const std::string& text, bool) {
            *value = parse_int(option, text);
        });
}

void ArgumentParser::add_option(
        const char* names,
        const char* metavar,
        const char* help,
        double* value,
        Presence presence) {
    const std::string option = split_names(names).back();
    std::ostringstream shown;
    shown << *value;
    add(names, metavar, help, shown.str(), presence, false,
        [value, option](const std::string& text, bool) {
            *value = parse_real(option, text);
        });
}

void ArgumentParser::add_option(
        const char* names,
        const char* metavar,
        const char* help,
        std::vector<int>* values,
        Presence presence) {
    const std::string option = split_names(names).back();
    std::string shown;
    for (int v : *values) {
        shown += (shown.empty() ? "" : " ") + std::to_string(v);
    }
    add(names, metavar, help, shown, presence, true,
        [values, option](const std::string& text, bool first) {
            if (first) {
                values->clear();
            }
            values->push_back(parse_int(option, text));
        });
}

void ArgumentParser::add_flag(const char* names, const char* help, bool* value) {
    add(names, "", help, "", Presence::Optional, false,
        [value](const std::string&, bool) { *value = true; });
}

ArgumentParser::Option* ArgumentParser::find(const std::string& name) {
    for (Option& o : options_) {
        for (const std::string& n : o.names) {
            if (n == name) {
                return &o;
            }
        }
    }
    return nullptr;
}

bool ArgumentParser::parse(const std::vector<std::string>& args) {
    size_t next_positional = 0;
    for (size_t i = 0; i < args.size(); i++) {
        const std::string& arg = args[i];
        if (arg == "-h" || arg == "--help") {
            fputs(help().c_str(), stdout);
            return false;
        }
        if (arg.size() < 2 || arg[0] != '-') {
            if (next_positional == positionals_.size()) {
                throw UsageError("unexpected argument '" + arg + "'");
            }
            *positionals_[next_positional++].value = arg;
            continue;
        }
        const size_t eq = arg.find('=');
        const std::string name = arg.substr(0, eq);
        Option* o = find(name);
        if (!o) {
            throw UsageError("unknown option " + name);
        }
        if (o->seen && !o->repeatable) {
            throw UsageError(name + " given twice");
        }
        std::string value;
        if (o->metavar.empty()) {
            if (eq != std::string::npos) {
                throw UsageError(name + " takes no value");
            }
        } else if (eq != std::string::npos) {
            value = arg.substr(eq + 1);
        } else if (i + 1 < args.size()) {
            value = args[++i];
        } else {
            throw UsageError(name + " needs a value (" + o->metavar + ")");
        }
        o->set(value, !o->seen);
        o->seen = true;
    }
    if (next_positional < positionals_.size()) {
        throw UsageError("missing " + positionals_[next_positional].name);
    }
    for (const Option& o : options_) {
        if (o.presence == Presence::Required && !o.seen) {
            throw UsageError("missing " + o.names.back() + " " + o.metavar);
        }
    }
    return true;
}

std::string ArgumentParser::usage() const {
    std::string s = "usage: " + command_;
    for (const Positional& p : positionals_) {
        s += " " + p.name;
    }
    for (const Option& o : options_) {
        if (o.presence == Presence::Required) {
            s += " " + o.names.back() + " " + o.metavar;
        }
    }
    return s + " [options]\n";
}

std::string ArgumentParser::help() const {
    std::string s = usage() + "\n" + summary_ + "\n";
    // "  LEFT   TEXT", TEXT wrapped at 80 columns and indented by 28.
    auto line = [&s](const std::string& left, const std::string& text) {
        const size_t indent = 28, width = 80;
        s += "  " + left;
        s += left.size() < indent - 2 ? std::string(indent - 2 - left.size(), ' ')
                                      : "\n" + std::string(indent, ' ');
        size_t column = indent;
        std::stringstream words(text);
        for (std::string word; words >> word;) {
            if (column > indent && column + 1 + word.size() > width) {
                s += "\n" + std::string(indent, ' ');
                column = indent;
            }
            if (column > indent) {
                s += ' ';
                column++;
            }
            s += word;
            column += word.size();
        }
        s += "\n";
    };
    if (!positionals_.empty()) {
        s += "\narguments:\n";
        for (const Positional& p : positionals_) {
            line(p.name, p.help);
        }
    }
    s += "\noptions:\n";
    for (const Option& o : options_) {
        std::string left = join(o.names);
        if (!o.metavar.empty()) {
            left += " " + o.metavar;
        }
        std::string text = o.help;
        if (o.presence == Presence::Required) {
            text += " (required)";
        } else if (!o.default_text.empty()) {
            text += " (default " + o.default_text + ")";
        }
        if (o.repeatable) {
            text += "; repeatable";
        }
        line(left, text);
    }
    line("-h, --help", "show this help and exit");
    return s;
}

} // namespace cli
} // namespace faiss_flash
