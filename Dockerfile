# MyMDB web image: nginx + uWSGI (Django) supervised by runit, all from Debian packages.
# BASE_IMAGE can be a locally bootstrapped Debian trixie (scripts/make-base-image.sh) when no
# registry is reachable; `npm run build` chooses.
ARG BASE_IMAGE=debian:trixie-slim
FROM ${BASE_IMAGE}

# Packages first: this layer changes rarely, code changes rebuild in seconds.
COPY scripts/install_packages.sh /mymdb/scripts/install_packages.sh
RUN bash /mymdb/scripts/install_packages.sh

# runit: Debian's /etc/service is a symlink to its own syslog service; use our services only.
RUN set -eux; \
    rm -rf /etc/service; \
    mkdir -p /etc/service /mymdb/media; \
    rm -f /etc/nginx/sites-enabled/* /etc/nginx/conf.d/*; \
    chown www-data:www-data /mymdb/media

COPY nginx/nginx.conf /etc/nginx/nginx.conf
COPY nginx/mymdb.conf.template /etc/nginx/mymdb.conf.template
COPY nginx/uwsgi_params /etc/nginx/mymdb_uwsgi_params
COPY nginx/429.html /etc/nginx/mymdb-errors/429.html
COPY uwsgi/ /mymdb/uwsgi/
COPY runit/nginx/ /etc/service/nginx/
COPY runit/uwsgi/ /etc/service/uwsgi/
COPY runit/boot /usr/local/sbin/boot
# No process of this container runs as root: runit, nginx (master and workers) and uWSGI run as
# www-data, which owns runit's state (supervise/), nginx's rendered site file and its temporary
# files. Port 80 needs no privilege in the container (docker-compose.yml's sysctl).
RUN set -eux; \
    mkdir -p /var/lib/nginx; \
    chown -R www-data:www-data /etc/service /etc/nginx/conf.d /var/lib/nginx
# Only the scripts the image runs (runit/uwsgi/run, runit/nginx/run, the RUN below, and the backup
# upload the host runs in a throw-away web container); the host-side ones (install-docker.sh,
# make-base-image.sh) stay out of the image.
COPY scripts/collect_static.sh scripts/wait_for_db.sh scripts/render_nginx_conf.sh scripts/s3_backup.py /mymdb/scripts/
COPY requirements.*.txt /mymdb/
COPY django/ /mymdb/django/

RUN bash /mymdb/scripts/collect_static.sh /mymdb/django \
 && python3 -m compileall -q /mymdb/django

ENV DJANGO_SETTINGS_MODULE=config.production_settings \
    DJANGO_MEDIA_ROOT=/mymdb/media \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UWSGI_PROCESSES=2 \
    UWSGI_THREADS=4

VOLUME /mymdb/media
USER www-data
EXPOSE 80
WORKDIR /mymdb/django
CMD ["/usr/local/sbin/boot"]
