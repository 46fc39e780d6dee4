from decimal import Decimal

from django import forms

from .models import Item


class ItemForm(forms.ModelForm):
    class Meta:
        model = Item
        fields = ["name", "price"]

    def clean_price(self):
        price = self.cleaned_data["price"]
        if price < Decimal("0"):
            raise forms.ValidationError("Price cannot be negative.")
        return price
