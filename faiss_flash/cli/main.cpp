// faiss-flash: faiss_flash's k-means from the command line.
//
//   faiss-flash kmeans IN --k K -o OUT      cluster, write centroids
//   faiss-flash train-index IN FACTORY -o OUT   train a FAISS index
//   faiss-flash bench IN -o OUT.csv         faiss_flash vs faiss::Clustering
//   faiss-flash demo -o OUTDIR              the Fashion-MNIST demo
//
// Exit status: 0 on success, 1 when the work failed (unreadable or invalid
// input, failed write, ...), 2 for a mistake on the command line.

#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include <faiss/impl/FaissException.h>

#include <faiss_flash/cli/arguments.h>
#include <faiss_flash/cli/commands.h>

namespace {

using faiss_flash::cli::UsageError;

struct Subcommand {
    const char* name;
    const char* summary;
    int (*run)(const std::vector<std::string>& args);
};


const Subcommand kSubcommands[] = {
        {"kmeans", "cluster vectors, write the centroids (and labels)",
         faiss_flash::cli::kmeans_command},
        {"train-index", "train a FAISS index (index_factory string), write it",
         faiss_flash::cli::train_index_command},
        {"bench", "faiss_flash vs faiss::Clustering on the same data, side by side",
         faiss_flash::cli::bench_command},
        {"demo", "Fashion-MNIST: k-means and IVF training vs FAISS, table and plot",
         faiss_flash::cli::demo_command},
};

void print_usage(FILE* out) {
    fprintf(out,
            "usage: faiss-flash SUBCOMMAND [arguments]\n\n"
            "faiss_flash's exact k-means (a drop-in faiss::Clustering) from the "
            "command line.\nVector files: *.fvecs, *.bvecs, *.npy, "
            "*idx3-ubyte[.gz].\n\nsubcommands:\n");
    for (const Subcommand& s : kSubcommands) {
        fprintf(out, "  %-13s %s\n", s.name, s.summary);
    }
    fprintf(out, "\n'faiss-flash SUBCOMMAND --help' shows its options.\n");
}

/** The message of an exception without the prefixes FAISS's macros add,
 * which tell a user nothing: "Error in <function> at <file>:<line>: " and,
 * from FAISS_THROW_IF_NOT*, "Error: '<condition>' failed: ".
 */
std::string user_message(const std::exception& e) {
    std::string what = e.what();
    if (!dynamic_cast<const faiss::FaissException*>(&e) ||
        what.rfind("Error in ", 0) != 0) {
        return what;
    }
    // The location ends at the first ":<line>: " after " at ".
    for (size_t pos = what.find(" at "); pos != std::string::npos;
         pos = what.find(':', pos + 1)) {
        size_t digits = pos + 1;
        while (digits < what.size() && isdigit((unsigned char)what[digits])) {
            digits++;
        }
        if (digits > pos + 1 && what.compare(digits, 2, ": ") == 0) {
            what = what.substr(digits + 2);
            break;
        }
    }
    const size_t failed = what.find("' failed: ");
    if (what.rfind("Error: '", 0) == 0 && failed != std::string::npos) {
        what = what.substr(failed + 10);
    }
    return what;
}

} // namespace

int main(int argc, char** argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        print_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const std::string name = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    for (const Subcommand& s : kSubcommands) {
        if (name != s.name) {
            continue;
        }
        try {
            return s.run(args);
        } catch (const UsageError& e) {
            fprintf(stderr,
                    "faiss-flash %s: %s\n'faiss-flash %s --help' shows the "
                    "options.\n",
                    s.name, e.what(), s.name);
            return 2;
        } catch (const std::bad_alloc&) {
            fprintf(stderr, "faiss-flash %s: error: out of memory\n", s.name);
            return 1;
        } catch (const std::exception& e) {
            fflush(stdout);
            fprintf(stderr, "faiss-flash %s: error: %s\n", s.name,
                    user_message(e).c_str());
            return 1;
        }
    }
    fprintf(stderr, "faiss-flash: unknown subcommand '%s'\n\n", name.c_str());
    print_usage(stderr);
    return 2;
}
