/*
 * standin_process.h - the kube-apiserver stand-in,
 * tests/standin/kube_standin.py, as a process of a unit test: python runs
 * the stand-in's helpers (certificates), then the stand-in itself, whose
 * URL is read from the line it prints once it listens. Each process dies
 * with the test (PR_SET_PDEATHSIG), also when the test crashes.
 *
 * meson test sets LO_TEST_PYTHON and LO_TEST_KUBE_STANDIN (tests/meson.build).
 * Header-only (static inline), as fixtures.h, so that each test stays one
 * self-contained executable.
 */
#ifndef LANGOP_TEST_STANDIN_PROCESS_H
#define LANGOP_TEST_STANDIN_PROCESS_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "langop/core/common.h"

typedef struct standin {
    pid_t pid;
    char url[64]; /* https://HOST:PORT */
    int port;
} standin_t;

/** 1 when the environment names python and the stand-in; else 0 and a message. */
static inline int standin_env_ok(void)
{
    if (getenv("LO_TEST_PYTHON") && getenv("LO_TEST_KUBE_STANDIN"))
        return 1;
    fprintf(stderr, "LO_TEST_PYTHON and LO_TEST_KUBE_STANDIN must be set (meson test does)\n");
    return 0;
}

/*
 * Runs python with args (NULL-terminated, at most 22) after it; 0 when it
 * exited 0. With out, its stdout is a pipe whose read end is *out, and the
 * process is not waited for: its pid is *pid.
 */
static inline int standin_run_python(char *const *args, int *out, pid_t *pid)
{
    const char *py = getenv("LO_TEST_PYTHON");
    char *argv[24] = {(char *)py};
    for (int i = 0; i < 22 && args[i]; i++)
        argv[i + 1] = args[i];
    int fds[2] = {-1, -1};
    if (out && pipe(fds) < 0)
        return -1;
    pid_t p = fork();
    if (p == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL); /* a test that crashes leaves no stand-in behind */
        if (out) {
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
        }
        execv(py, argv);
        _exit(127);
    }
    if (out) {
        close(fds[1]);
        *out = fds[0];
        *pid = p;
        return p > 0 ? 0 : -1;
    }
    int status = 0;
    return p > 0 && waitpid(p, &status, 0) == p && WIFEXITED(status) &&
                   WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* What a script of standin_python_in starts with: the stand-in imported as k, the folder as d. */
#define STANDIN_PY_PRELUDE                                                                         \
    "import os, sys\n"                                                                             \
    "sys.path.insert(0, os.path.dirname(os.environ['LO_TEST_KUBE_STANDIN']))\n"                    \
    "import kube_standin as k\n"                                                                   \
    "d = sys.argv[1]\n"

/*
 * Runs script (python source that starts with STANDIN_PY_PRELUDE, e.g.
 * STANDIN_PY_PRELUDE "k.make_serving_certs(d)\n") with dir as sys.argv[1].
 * 0 when it exited 0.
 */
static inline int standin_python_in(const char *script, const char *dir)
{
    char *args[] = {"-c", (char *)script, (char *)dir, NULL};
    return standin_run_python(args, NULL, NULL);
}

/*
 * Starts a stand-in on host (any free port) serving dir/apiserver.crt and
 * .key (the files of the stand-in's make_serving_certs), verifying client
 * certificates against dir/ca.crt. With kubeconfig (may be NULL) it also
 * writes a kubeconfig there that trusts dir/ca.crt. 0 once it listens.
 */
static inline int standin_start(standin_t *s, const char *dir, const char *host, const char *kubeconfig)
{
    char *cert = lo_sprintf("%s/apiserver.crt", dir), *key = lo_sprintf("%s/apiserver.key", dir);
    char *ca = lo_sprintf("%s/ca.crt", dir);
    char *args[16] = {getenv("LO_TEST_KUBE_STANDIN"), "--host", (char *)host, "--port", "0",
                      "--cert", cert, "--key", key, "--client-ca", ca, NULL};
    if (kubeconfig) {
        args[11] = "--kubeconfig", args[12] = (char *)kubeconfig;
        args[13] = "--kubeconfig-ca", args[14] = ca;
    }
    int fd;
    int rc = standin_run_python(args, &fd, &s->pid);
    free(cert), free(key), free(ca);
    if (rc < 0)
        return -1;
    FILE *f = fdopen(fd, "r");
    char line[128] = {0};
    if (fgets(line, sizeof(line), f) == NULL ||
        sscanf(line, "kube-standin listening on %63s", s->url) != 1) {
        fprintf(stderr, "kube_standin.py on %s did not start\n", host);
        fclose(f);
        return -1;
    }
    fclose(f);
    s->port = atoi(strrchr(s->url, ':') + 1);
    return 0;
}

/** Asks the stand-in to end (SIGTERM), without waiting: stop several at once. */
static inline void standin_signal(standin_t *s)
{
    if (s->pid > 0)
        kill(s->pid, SIGTERM);
}

/** After standin_signal: gone within 5 s, or SIGKILL. */
static inline void standin_reap(standin_t *s)
{
    if (s->pid <= 0)
        return;
    for (int i = 0; i < 50 && waitpid(s->pid, NULL, WNOHANG) == 0; i++)
        usleep(100 * 1000);
    if (kill(s->pid, 0) == 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

/** standin_signal, then standin_reap. */
static inline void standin_stop(standin_t *s)
{
    standin_signal(s);
    standin_reap(s);
}

#endif
