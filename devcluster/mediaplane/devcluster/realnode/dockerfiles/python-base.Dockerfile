# The local stand-in for python:3.11-slim-bookworm: a Debian bookworm root filesystem made
# by debootstrap (minbase + python3.11) on this machine, see realnode/baseimage.py. The
# build context holds only rootfs.tar.
FROM scratch
ADD rootfs.tar /
ENV LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["python3"]
