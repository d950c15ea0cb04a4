/*
 * fuzz_kubeconfig.c - kubeconfig files (kube/kubeconfig.c), as
 * --authentication-kubeconfig, --authorization-kubeconfig and the reconcile
 * thread's kubeconfig give them.
 *
 * Input: the file (YAML or JSON), then optionally a NUL byte and the
 * context to use. The file is written into a folder of its own, beside a
 * token file and a CA file that relative paths may name.
 * Checked besides crashes: a refusal says why; a configuration that loads
 * has an https server and, where it names files, absolute paths; its token
 * can be read when it names the token file beside it.
 */
#include "fuzz.h"
#include "langop/kube/kubeconfig.h"

#include <fcntl.h>
#include <unistd.h>

static char dir[64], path[96];

static void write_file(const char *name, const char *text, size_t len)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        perror(p);
        abort();
    }
    close(fd);
}

static void remove_folder(void)
{
    static const char *const names[] = {"config", "token", "ca.crt"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char p[128];
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(dir, sizeof(dir), "%.40s/lo-fuzz-kc.XXXXXX", tmp);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    snprintf(path, sizeof(path), "%s/config", dir);
    write_file("token", "fuzz-token\n", 11);
    write_file("ca.crt", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", 54);
    atexit(remove_folder);
    return 0;
}

static int inside_dir(const char *p)
{
    size_t n = strlen(dir);
    return p != NULL && strncmp(p, dir, n) == 0 && p[n] == '/' && strstr(p, "/..") == NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_part_t parts[2];
    size_t n = fuzz_split(data, size, parts, 2);
    write_file("config", parts[0].p, parts[0].n);
    char *context = n > 1 ? fuzz_string(parts[1]) : NULL;
    lo_err_t err = {0};
    kube_config_t *cfg = kubeconfig_load_file(path, context, &err);
    if (cfg == NULL) {
        FUZZ_CHECK(err.message[0] != '\0', "a kubeconfig refused without a reason");
    } else {
        FUZZ_CHECK(cfg->server != NULL && strncmp(cfg->server, "https://", 8) == 0, "server %s",
                   cfg->server ? cfg->server : "(none)");
        const char *files[] = {cfg->ca_file, cfg->cert_file, cfg->key_file, cfg->token_file};
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
            FUZZ_CHECK(files[i] == NULL || files[i][0] == '/', "a relative path: %s", files[i]);
        /* a token file elsewhere could be a FIFO: only the one beside the file is read */
        if (cfg->token_file == NULL || inside_dir(cfg->token_file)) {
            char *token = kubeconfig_token(cfg, &err);
            free(token);
        }
        kubeconfig_free(cfg);
    }
    lo_err_clear(&err);
    free(context);
    return 0;
}
