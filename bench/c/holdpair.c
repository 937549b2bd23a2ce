/* A minimal C epoll pair for bench/compare_c.py: the same work as the agent's
 * hold-server and hold-clients, so their connection rates can be compared.
 *
 *   holdpair server PORT WORKERS          fork WORKERS, each SO_REUSEPORT listen+accept+epoll
 *   holdpair client HOST PORT INFLIGHT SPEC...
 *        SPEC is one worker: "ip=count,ip=count"; prints "done <held> <errors> <seconds>" per worker
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void raise_nofile(void) {
    struct rlimit r;
    getrlimit(RLIMIT_NOFILE, &r);
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
}

static int serve(int port) {
    int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 4096)) { perror("listen"); return 1; }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd}, evs[4096];
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 4096, 1000);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == lfd) {
                for (int k = 0; k < 4096; k++) {
                    int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
                    if (c < 0) { if (errno == EMFILE) usleep(10000); break; }
                    struct epoll_event ce = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
                }
            } else {
                char buf[4096];
                if (read(fd, buf, sizeof buf) <= 0) { epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL); close(fd); }
            }
        }
    }
}

struct source { struct sockaddr_in addr; long left; };

static int client(const char *host, int port, int inflight, char *spec) {
    struct source src[256];
    int nsrc = 0;
    for (char *tok = strtok(spec, ","); tok && nsrc < 256; tok = strtok(NULL, ",")) {
        char *eq = strchr(tok, '=');
        *eq = 0;
        memset(&src[nsrc], 0, sizeof src[nsrc]);
        src[nsrc].addr.sin_family = AF_INET;
        inet_pton(AF_INET, tok, &src[nsrc].addr.sin_addr);
        src[nsrc].left = atol(eq + 1);
        nsrc++;
    }
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &dst.sin_addr);
    int ep = epoll_create1(0), one = 1, pending = 0, live = nsrc, turn = 0;
    long held = 0, errors = 0;
    struct epoll_event evs[4096];
    double start = now();
    while ((live > 0 || pending > 0) && now() - start < 600) {
        while (pending < inflight && live > 0) {
            struct source *s = &src[turn++ % nsrc];
            if (s->left <= 0) continue;
            if (--s->left == 0) live--;
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (fd < 0) { errors++; live = 0; break; }
            setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
            bind(fd, (struct sockaddr *)&s->addr, sizeof s->addr);
            if (connect(fd, (struct sockaddr *)&dst, sizeof dst) && errno != EINPROGRESS) {
                errors++; close(fd); continue;
            }
            struct epoll_event ev = {.events = EPOLLOUT, .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
            pending++;
        }
        int n = epoll_wait(ep, evs, 4096, 10);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd, err = 0;
            socklen_t len = sizeof err;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
            pending--;
            if (err) { errors++; close(fd); } else held++;
        }
    }
    printf("done %ld %ld %.4f\n", held, errors, now() - start);
    fflush(stdout);
    pause(); /* hold until killed */
    return 0;
}

int main(int argc, char **argv) {
    raise_nofile();
    if (argc >= 4 && !strcmp(argv[1], "server")) {
        int workers = atoi(argv[3]);
        for (int i = 0; i < workers; i++)
            if (fork() == 0) { prctl(PR_SET_PDEATHSIG, SIGKILL); return serve(atoi(argv[2])); }
        printf("listening\n");
        fflush(stdout);
        while (wait(NULL) > 0) {}
        return 0;
    }
    if (argc >= 6 && !strcmp(argv[1], "client")) {
        for (int i = 5; i < argc; i++)
            if (fork() == 0) { prctl(PR_SET_PDEATHSIG, SIGKILL); return client(argv[2], atoi(argv[3]), atoi(argv[4]), argv[i]); }
        while (wait(NULL) > 0) {}
        return 0;
    }
    fprintf(stderr, "usage: holdpair server PORT WORKERS | client HOST PORT INFLIGHT SPEC...\n");
    return 2;
}
