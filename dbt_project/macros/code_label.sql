{#- The English label of a code, from the code book seed (`baac_codes`, raw BAAC columns) or
    the `derived_codes` seed (codes this project derives: severity, safety equipment). -#}
{% macro code_label(code, codebook_table, codebook_column, seed='baac_codes') -%}
    (
        select codes.label_en
        from {{ ref(seed) }} as codes
        where codes."table" = '{{ codebook_table }}'
            and codes."column" = '{{ codebook_column }}'
            and codes.code = cast({{ code }} as varchar)
    )
{%- endmacro %}
