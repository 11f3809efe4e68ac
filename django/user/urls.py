from django.contrib.auth import views as auth_views
from django.urls import path

from . import views

app_name = "user"
urlpatterns = [
    path("register", views.RegisterView.as_view(), name="register"),
    path("login", auth_views.LoginView.as_view(template_name="user/login.html"), name="login"),
    # POST only (Django 5 removed GET logout); the nav has a small POST form.
    path("logout", auth_views.LogoutView.as_view(), name="logout"),
]
