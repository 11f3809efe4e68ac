from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from core.views import healthz

urlpatterns = [
    # Normally answered by core.middleware.HealthCheckMiddleware before URL resolution; this
    # route only gives the probe a name for reverse("healthz").
    path("healthz", healthz, name="healthz"),
    path(f"{settings.ADMIN_URL}/", admin.site.urls),
    path("user/", include("user.urls", namespace="user")),
    path("", include("core.urls", namespace="core")),
]

if settings.DEBUG:
    # Development only: production serves uploads from nginx (/media/) or S3.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
    if "debug_toolbar" in settings.INSTALLED_APPS:
        urlpatterns.append(path("__debug__/", include("debug_toolbar.urls")))
