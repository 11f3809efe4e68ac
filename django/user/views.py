from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.urls import reverse_lazy
from django.views.generic import CreateView


class RegisterView(CreateView):
    form_class = UserCreationForm
    template_name = "user/register.html"
    success_url = reverse_lazy("core:movie_list")

    def form_valid(self, form):
        response = super().form_valid(form)
        login(self.request, self.object)  # registered users start logged in
        return response
