from django.db import models


class OperationsPanel(models.Model):
    """No table: gives the admin's Operations panel its place and its permissions."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = "operations panel"
        verbose_name_plural = "operations panel"

    def __str__(self) -> str:
        return "Operations panel"
