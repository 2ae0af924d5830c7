// SPDX-License-Identifier: Apache-2.0
/*
 * snapkit guest init (PID 1): mounts the pseudo file systems, makes the
 * serial console a raw line, credits the kernel's entropy pool (no RDRAND
 * in the guest's CPU view, and Python's first getrandom() would otherwise
 * wait for the jitter collector, which is slow when kernel code is
 * emulated), then becomes the Python function runner.
 *
 * Everything here runs once per boot; nothing of it is on a timed path.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static void say(const char *msg)
{
	(void)!write(2, msg, strlen(msg));
}

static void mount_or_warn(const char *src, const char *dst, const char *type,
			  const char *opts)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, 0, opts) != 0 && errno != EBUSY) {
		char buf[160];
		snprintf(buf, sizeof buf, "init: mount %s: %s\n", dst, strerror(errno));
		say(buf);
	}
}

static void credit_entropy(void)
{
	/* The guest is a lab VM restored from snapshots many times over: its
	 * randomness is not secret anyway.  A fixed seed keeps runs
	 * reproducible. */
	struct {
		struct rand_pool_info info;
		unsigned char bytes[64];
	} seed;
	seed.info.entropy_count = 8 * sizeof seed.bytes;
	seed.info.buf_size = sizeof seed.bytes;
	for (unsigned i = 0; i < sizeof seed.bytes; i++)
		seed.bytes[i] = (unsigned char)(i * 151u + 7u);
	int fd = open("/dev/random", O_RDWR);
	if (fd < 0 || ioctl(fd, RNDADDENTROPY, &seed.info) != 0)
		say("init: could not credit entropy\n");
	if (fd >= 0)
		close(fd);
}

static void raw_console(void)
{
	struct termios t;
	if (tcgetattr(0, &t) != 0)
		return;
	cfmakeraw(&t);
	t.c_oflag |= OPOST | ONLCR;	/* "\n" -> "\r\n" like the kernel's own lines */
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	cfsetispeed(&t, B115200);
	cfsetospeed(&t, B115200);
	tcsetattr(0, TCSANOW, &t);
}

int main(void)
{
	mount_or_warn("devtmpfs", "/dev", "devtmpfs", NULL);
	mount_or_warn("proc", "/proc", "proc", NULL);
	mount_or_warn("tmpfs", "/tmp", "tmpfs", "mode=1777");
	credit_entropy();
	raw_console();

	static char *const argv[] = {
		"/usr/bin/python3.11", "-S", "-B", "-u", "/snapkit/runner.py", NULL
	};
	static char *const envp[] = {
		"PATH=/bin:/usr/bin",
		"HOME=/tmp",
		"PYTHONHOME=/usr",
		"PYTHONHASHSEED=0",
		"PYTHONDONTWRITEBYTECODE=1",
		/* Python's own small-object arenas are unmapped when empty;
		 * glibc malloc with these tunables keeps freed memory, so pages
		 * touched by the warm-up invocation stay mapped and later
		 * invocations take no guest page faults (each costs ~8 ms of
		 * emulated kernel code under PVM). */
		"PYTHONMALLOC=malloc",
		"MALLOC_ARENA_MAX=1",
		"MALLOC_MMAP_THRESHOLD_=33554432",	/* the maximum glibc accepts */
		"MALLOC_TRIM_THRESHOLD_=1073741824",
		"MALLOC_TOP_PAD_=1048576",
		"OMP_NUM_THREADS=1",
		"OPENBLAS_NUM_THREADS=1",
		NULL
	};
	execve(argv[0], argv, envp);
	say("init: cannot exec the runner, falling back to a shell\n");
	static char *const sh[] = { "/bin/busybox", "sh", NULL };
	execve(sh[0], sh, envp);
	return 1;
}
