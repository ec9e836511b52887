{#- The split bucket (0-99) of an accident: an MD5 of its number salted with the seed, so it
    depends on nothing but Num_Acc (not on load order, other rows or DuckDB's version). -#}
{% macro split_bucket(num_acc) -%}
    cast(('0x' || left(md5(cast({{ num_acc }} as varchar) || '-' || '{{ var("split_seed") }}'), 8))::ubigint % 100 as integer)
{%- endmacro %}

{% macro split_from_bucket(bucket) -%}
    case
        when {{ bucket }} < {{ var("split_train_percent") }} then 'train'
        when {{ bucket }} < {{ var("split_train_percent") + var("split_validation_percent") }} then 'validation'
        else 'test'
    end
{%- endmacro %}
